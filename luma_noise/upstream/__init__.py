"""The upstream: fetching LUMA's published files (mirror, download cache, the Hub, streaming), their
formats, and the checks that keep unreadable or unsafe copies out of a build.

`fetcher.Fetcher` (one per build) over `download` (bulk downloads: rate limits, resume, checksums),
`sources` (CIFAR tarballs, the EDM pickle, the datalist, texts, split files), `safe_pickle`
(restricted unpickling), `wav_check` and `durations` (time estimates).
"""
