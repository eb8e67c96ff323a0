"""Sample noise: `sample_noise.SampleNoise` drives one noise per modality through one call
(`noise(contents, rngs) -> [(noised content, NoiseRecord)]`): `image` (imagecorruptions, with
`cifar10c`'s CIFAR-10-C tables), `audio` (audiomentations, ESC-50 backgrounds) and `text` (nlpaug,
with `back_translation`'s engines).
"""
