"""Text-to-speech: renders a tone per word and exports MP3 (pydub shells out to ffmpeg)."""

import io

import numpy as np  # not declared in requirements.txt: it only works because soundfile pulls it in
import soundfile as sf
from pydub import AudioSegment


def synthesize(text: str, rate: int = 22_050) -> bytes:
    t = np.linspace(0, 0.2, int(rate * 0.2), endpoint=False)
    tones = [np.sin(2 * np.pi * (200 + 20 * len(word)) * t) for word in text.split()]
    buffer = io.BytesIO()
    sf.write(buffer, np.concatenate(tones), rate, format="WAV")
    buffer.seek(0)
    out = io.BytesIO()
    AudioSegment.from_wav(buffer).export(out, format="mp3")
    return out.getvalue()
