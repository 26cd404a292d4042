"""Speech-to-text: records from the sound card, writes WAV chunks, transcribes them."""

import queue

import numpy as np
import sounddevice as sd
import soundfile as sf

from stt.pipeline import transcribe

try:
    import torch  # faster decoding when the image ships torch
except ImportError:
    torch = None

SAMPLE_RATE = 16_000


def record(seconds: float) -> np.ndarray:
    frames: queue.Queue[np.ndarray] = queue.Queue()
    with sd.InputStream(samplerate=SAMPLE_RATE, channels=1, callback=lambda d, *_: frames.put(d.copy())):
        sd.sleep(int(seconds * 1000))
    return np.concatenate(list(frames.queue))


if __name__ == "__main__":
    audio = record(5.0)
    sf.write("/tmp/chunk.wav", audio, SAMPLE_RATE)
    print(transcribe("/tmp/chunk.wav", use_gpu=torch is not None))
