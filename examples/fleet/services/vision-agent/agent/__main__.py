"""Vision agent: thumbnails frames with Pillow; OpenCV only for the optional live preview."""

import sys

from PIL import Image

from agent.preview import show


def thumbnail(path: str) -> Image.Image:
    image = Image.open(path)
    image.thumbnail((256, 256))
    return image


if __name__ == "__main__":
    show(thumbnail(sys.argv[1]))
