"""Face detection with OpenCV's bundled Haar cascades."""

import sys

import cv2
import numpy as np

CASCADE = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"


def faces(path: str) -> np.ndarray:
    image = cv2.imread(path)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.CascadeClassifier(CASCADE).detectMultiScale(gray, 1.1, 4)


if __name__ == "__main__":
    print(faces(sys.argv[1]))
