"""Optional live preview: works without OpenCV, just shows nothing."""


def show(image) -> None:
    try:
        import cv2
        import numpy as np
    except ImportError:
        return
    cv2.imshow("preview", np.asarray(image))
    cv2.waitKey(1)
