"""Decoding pipeline (the model itself is out of scope for the example)."""

import soundfile as sf


def transcribe(path: str, use_gpu: bool = False) -> str:
    data, rate = sf.read(path)
    return f"{len(data) / rate:.1f} s of audio ({'gpu' if use_gpu else 'cpu'})"
