"""Tests for luma_noise.noise.audio: ESC-50 background mixing, archive extraction, wav helpers."""

import io
import pickle
import random
import zipfile

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from luma_noise.noise.audio import AudioNoise, decode_wav, encode_wav, esc50_wavs

SR = 16_000


def _write(path, samples, sample_rate):
    soundfile.write(str(path), np.asarray(samples, np.float32), sample_rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def backgrounds(tmp_path_factory):
    """Four ESC-50-like backgrounds: other rates, stereo, shorter than a clip, mostly zero padding."""
    folder = tmp_path_factory.mktemp("esc50")
    rng = np.random.default_rng(0)
    t = np.arange(4_000) / 8_000
    padded = np.zeros(3 * 44_100)
    padded[:2_205] = 0.5 * rng.standard_normal(2_205)  # 50 ms of sound, then silence
    return [
        _write(folder / "1-100-A-0.wav", 0.3 * rng.standard_normal(3 * 44_100), 44_100),
        _write(folder / "2-200-A-1.wav", 0.2 * rng.standard_normal((2 * 22_050, 2)), 22_050),
        _write(folder / "3-300-A-2.wav", 0.5 * np.sin(2 * np.pi * 1_000 * t), 8_000),  # 0.5 s tone
        _write(folder / "4-400-A-3.wav", padded, 44_100),
    ]


@pytest.fixture(scope="module")
def noise(backgrounds):
    return AudioNoise(backgrounds)


def speech_like(n: int, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (amplitude * envelope * np.sin(2 * np.pi * 220 * t + rng.uniform(0, 6))).astype(np.float32)


def snr_db(clean, noised) -> float:
    clean, noised = clean.astype(np.float64), noised.astype(np.float64)
    return 20 * np.log10(np.sqrt(np.mean(clean**2)) / np.sqrt(np.mean((noised - clean) ** 2)))


@settings(max_examples=40, deadline=None)
@given(snrs=st.lists(st.floats(-10, 30), min_size=2, max_size=2).map(sorted), seed=st.integers(0, 2**32),
       n=st.sampled_from([1, 37, 1_600, 16_000, 48_000]), amplitude=st.floats(1e-4, 1.0))
def test_measured_snr_is_the_drawn_one_and_in_range(backgrounds, snrs, seed, n, amplitude):
    noise = AudioNoise(backgrounds, min_snr_db=snrs[0], max_snr_db=snrs[1])
    clean = speech_like(n, seed % 100, amplitude)
    noised, record = noise(clean, SR, np.random.default_rng(seed))
    assert noised.dtype == np.float32 and noised.shape == clean.shape and np.isfinite(noised).all()
    assert record.modality == "audio" and record.name == "esc50_background" and record.params["applied"]
    assert record.params["background"] in noise.backgrounds
    measured = snr_db(clean, noised)
    assert snrs[0] - 0.01 <= measured <= snrs[1] + 0.01
    assert measured == pytest.approx(record.params["snr_db"], abs=0.01)


def test_default_range_is_the_papers(noise):
    clean = speech_like(SR)
    measured = [snr_db(clean, noise(clean, SR, np.random.default_rng(k))[0]) for k in range(30)]
    assert 3 - 0.01 <= min(measured) and max(measured) <= 5 + 0.01


def test_same_seed_same_output_different_seed_different_output(noise):
    clean = speech_like(SR)
    first, record = noise(clean, SR, np.random.default_rng(1))
    again, again_record = noise(clean, SR, np.random.default_rng(1))
    other, other_record = noise(clean, SR, np.random.default_rng(2))
    assert np.array_equal(first, again) and record == again_record
    assert not np.array_equal(first, other) and record != other_record
    assert np.array_equal(noise.apply(clean, SR, record.params), first)


def test_order_of_background_paths_does_not_matter(backgrounds, noise):
    clean = speech_like(SR)
    shuffled = AudioNoise([str(p) for p in reversed(backgrounds)])
    for k in range(5):
        assert np.array_equal(shuffled(clean, SR, np.random.default_rng(k))[0], noise(clean, SR, np.random.default_rng(k))[0])


def test_global_random_state_untouched(noise):
    random.seed(3)
    np.random.seed(3)
    py_state, np_state = random.getstate(), np.random.get_state()
    for k in range(5):
        noise(speech_like(8_000), SR, np.random.default_rng(k))
    assert random.getstate() == py_state
    assert np.array_equal(np.random.get_state()[1], np_state[1]) and np.random.get_state()[2] == np_state[2]


def test_background_is_resampled_to_the_clip_rate(backgrounds):
    noise = AudioNoise([backgrounds[2]])  # a 1 kHz tone stored at 8 kHz, 0.5 s: repeated in a 1 s clip
    clean = np.random.default_rng(0).uniform(-0.01, 0.01, SR).astype(np.float32)
    noised, record = noise(clean, SR, np.random.default_rng(0))
    spectrum = np.abs(np.fft.rfft(noised - clean))
    assert np.argmax(spectrum) * SR / len(clean) == pytest.approx(1_000, abs=5)
    assert snr_db(clean, noised) == pytest.approx(record.params["snr_db"], abs=0.01)


@pytest.mark.parametrize("clean", [np.zeros(0, np.float32), np.zeros(SR, np.float32), np.zeros(5, np.float64)])
def test_silent_and_empty_clips_stay_as_they_are(noise, clean):
    noised, record = noise(clean, SR, np.random.default_rng(0))
    assert noised.dtype == np.float32 and noised.shape == clean.shape and not np.any(noised)
    assert record.params["applied"] is False and set(record.params) == {"snr_db", "background", "offset_s", "applied"}
    assert noise.apply(clean, SR, record.params).shape == clean.shape


def test_tiny_clip_gets_tiny_finite_noise(noise):
    clean = speech_like(SR, amplitude=1e-20)
    noised, record = noise(clean, SR, np.random.default_rng(0))
    assert np.isfinite(noised).all() and record.params["applied"]


def test_all_silent_backgrounds_fail_clearly(tmp_path):
    noise = AudioNoise([_write(tmp_path / "0-0-A-0.wav", np.zeros(44_100), 44_100)])
    with pytest.raises(RuntimeError, match="digital silence.*0-0-A-0.wav"):
        noise(speech_like(SR), SR, np.random.default_rng(0))


def test_survives_pickling(noise):
    clean = speech_like(SR)
    copy = pickle.loads(pickle.dumps(noise))
    assert np.array_equal(copy(clean, SR, np.random.default_rng(4))[0], noise(clean, SR, np.random.default_rng(4))[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"min_snr_db": 6.0, "max_snr_db": 5.0}, r"min_snr_db \(6.0\) must be <= max_snr_db \(5.0\)"),
    ({"min_snr_db": float("nan")}, "min_snr_db must be a finite number of dB"),
    ({"max_snr_db": "5"}, "max_snr_db must be a finite number of dB"),
])
def test_snr_validation(backgrounds, kwargs, message):
    with pytest.raises(ValueError, match=message):
        AudioNoise(backgrounds, **kwargs)


def test_background_validation(backgrounds, tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        AudioNoise([])
    with pytest.raises(ValueError, match="single path"):
        AudioNoise(str(backgrounds[0]))
    with pytest.raises(ValueError, match="not a file"):
        AudioNoise([tmp_path / "missing.wav"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="audio files"):
        AudioNoise([tmp_path / "notes.txt"])
    twin = tmp_path / backgrounds[0].name
    twin.write_bytes(backgrounds[0].read_bytes())
    with pytest.raises(ValueError, match="distinct file names"):
        AudioNoise([backgrounds[0], twin])


@pytest.mark.parametrize("samples, sample_rate, message", [
    (np.zeros((2, 100), np.float32), SR, "1-D float"), (np.zeros(100, np.int16), SR, "1-D float"),
    (np.full(10, np.nan, np.float32), SR, "finite"), (np.zeros(10, np.float32), 0, "sample_rate"),
    (np.zeros(10, np.float32), 16_000.0, "sample_rate")])
def test_clip_validation(noise, samples, sample_rate, message):
    with pytest.raises(ValueError, match=message):
        noise(samples, sample_rate, np.random.default_rng(0))


def _esc50_zip(path, wavs, top="ESC-50-master"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{top}/README.md", "ESC-50")
        for name, data in wavs.items():
            archive.writestr(f"{top}/audio/{name}", data)
        rows = "".join(f"{name},1,{i},{'rain' if i % 2 else 'dog'},False,x,A\n" for i, name in enumerate(wavs))
        archive.writestr(f"{top}/meta/esc50.csv", "filename,fold,target,category,esc10,src_file,take\n" + rows)
    return path


WAVS = {name: encode_wav(speech_like(800, i), 8_000) for i, name in enumerate(["2-9-A-5.wav", "1-5-B-0.wav", "1-7-A-3.wav"])}


def _extracted(archive, tmp_path):
    """`archive` extracted the way the builder does it: datasets' own DownloadManager.extract."""
    import datasets

    config = datasets.DownloadConfig(cache_dir=str(tmp_path / "downloads"))
    return datasets.DownloadManager(download_config=config).extract(str(archive))


def test_esc50_wavs_of_an_extracted_archive_sorted_by_name(tmp_path):
    archive = _esc50_zip(tmp_path / "master.zip", WAVS, top="ESC-50-33c8ce9")
    paths = esc50_wavs(_extracted(archive, tmp_path))
    assert [p.name for p in paths] == sorted(WAVS) and all(p.read_bytes() == WAVS[p.name] for p in paths)
    assert decode_wav(paths[0].read_bytes())[1] == 8_000


def test_esc50_wavs_names_the_layout_when_nothing_matches(tmp_path):
    with zipfile.ZipFile(tmp_path / "flat.zip", "w") as archive:
        archive.writestr("audio/1-5-B-0.wav", WAVS["1-5-B-0.wav"])
    with pytest.raises(FileNotFoundError, match=r"ESC-50-master/audio/.*first members seen: \['audio', 'audio/1-5-B-0.wav'\]"):
        esc50_wavs(_extracted(tmp_path / "flat.zip", tmp_path))


def test_wav_round_trip_is_deterministic_and_clips():
    clean = speech_like(SR)
    data = encode_wav(clean, SR)
    assert data == encode_wav(clean.copy(), SR)
    decoded, sample_rate = decode_wav(data)
    assert sample_rate == SR and decoded.dtype == np.float32
    assert np.max(np.abs(decoded - clean)) <= 1 / 32_767
    loud, _ = decode_wav(encode_wav(np.array([2.0, -3.0, 0.5], np.float32), SR))
    assert loud[0] == pytest.approx(1.0, abs=1e-4) and loud[1] == pytest.approx(-1.0, abs=1e-4)


def test_decode_wav_averages_channels():
    buffer = io.BytesIO()
    soundfile.write(buffer, np.array([[0.5, 0.0], [0.25, 0.25]], np.float32), 8_000, format="WAV", subtype="PCM_16")
    decoded, sample_rate = decode_wav(buffer.getvalue())
    assert sample_rate == 8_000 and decoded == pytest.approx([0.25, 0.25], abs=1e-4)
