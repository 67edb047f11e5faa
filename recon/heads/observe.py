"""Face observations with MediaPipe's face mesh (extra ``humans``; mediapipe 0.10.21, ``mp.solutions``).

Per image: the 478 landmarks (468 face points + 10 iris points) in pixels, with mediapipe's relative
depth, and the face's box. The model ships in the wheel; nothing is downloaded. Images are read in
static mode (every frame a fresh detection), so a video frame never inherits a wrong track.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.log import get_logger

log = get_logger(__name__)

NUM_LANDMARKS = 478
FACE_POINTS = 468  # the iris points (468..477) follow the gaze, which the head model does not


@dataclass(frozen=True)
class FaceObservation:
    """landmarks: (478, 3) float32 (x, y pixels; z: mediapipe's relative depth, in x's pixel scale);
    box: (x0, y0, x1, y1) pixels; faces_found: how many faces the image held."""

    landmarks: np.ndarray
    box: tuple[float, float, float, float]
    faces_found: int

    @property
    def size(self) -> float:
        """The face's scale in pixels: the diagonal of its landmark box."""
        x0, y0, x1, y1 = self.box
        return float(np.hypot(x1 - x0, y1 - y0))


class FaceMeshDetector:
    """MediaPipe face mesh, static image mode, up to ``max_faces`` faces, refined (iris) landmarks.

    MediaPipe's face detector is short-range (faces within about 2 m of a phone): a smaller face (a
    person filmed full length) is found through MediaPipe pose instead, whose head points give a crop
    that is enlarged to ``ZOOM`` pixels and searched again (one face: the pose model tracks one person).
    """

    ZOOM = 384  # pixels of the enlarged head crop
    CROP = 3.0  # the crop's half size in eye distances (pose points 2 and 5)

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5, zoom_small: bool = True):
        from ..capture.people_masks import _mediapipe

        mp = _mediapipe()
        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                                     max_num_faces=max_faces,
                                                     min_detection_confidence=min_confidence)
        # pose complexity 1: the model that ships in the wheel (0 and 2 would be downloaded)
        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) if zoom_small else None

    def close(self) -> None:
        self._mesh.close()
        if self._pose is not None:
            self._pose.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def detect(self, image: np.ndarray) -> list[FaceObservation]:
        """All faces in ``image`` (H, W, 3) uint8 RGB, largest first."""
        image = np.ascontiguousarray(image[..., :3])
        obs = self._faces(image, 0.0, 0.0, 1.0)
        if not obs and self._pose is not None:
            crop = self._head_crop(image)
            if crop is not None:
                x0, y0, x1, y1 = crop
                zoomed = cv2.resize(image[y0:y1, x0:x1], (self.ZOOM, self.ZOOM), interpolation=cv2.INTER_CUBIC)
                obs = self._faces(zoomed, x0, y0, (x1 - x0) / self.ZOOM)[:1]
        return obs

    def _faces(self, image: np.ndarray, x0: float, y0: float, scale: float) -> list[FaceObservation]:
        """Faces in ``image``, their landmarks mapped by ``x0 + scale * x`` (a crop back to its photo)."""
        h, w = image.shape[:2]
        found = self._mesh.process(image).multi_face_landmarks or []
        obs = []
        for face in found:
            p = np.array([(q.x * w, q.y * h, q.z * w) for q in face.landmark], np.float32) * scale
            p[:, 0] += x0
            p[:, 1] += y0
            box = (float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))
            obs.append(FaceObservation(p, box, len(found)))
        return sorted(obs, key=lambda o: -o.size)

    def _head_crop(self, image: np.ndarray) -> tuple[int, int, int, int] | None:
        """A square (x0, y0, x1, y1) around the head MediaPipe pose finds, or None."""
        h, w = image.shape[:2]
        res = self._pose.process(image)
        if not res.pose_landmarks:
            return None
        p = np.array([(q.x * w, q.y * h) for q in res.pose_landmarks.landmark[:11]])  # face points
        half = self.CROP * np.linalg.norm(p[2] - p[5]) + 1
        c = p.mean(0)
        x0, y0 = int(max(c[0] - half, 0)), int(max(c[1] - half, 0))
        x1, y1 = int(min(c[0] + half, w)), int(min(c[1] + half, h))
        return (x0, y0, x1, y1) if min(x1 - x0, y1 - y0) >= 16 else None


def pick_face(faces: list[FaceObservation], where: str, face_index: int | None = None) -> FaceObservation:
    """The face to fit in one image: ``face_index`` (0 = largest) or the largest, saying so when there
    are several. No face: InputError."""
    if not faces:
        raise InputError(where, "no face found (mediapipe face mesh): the face must be visible, lit and not "
                                "turned much past profile")
    if face_index is not None:
        if not 0 <= face_index < len(faces):
            raise InputError(where, f"--face-index {face_index}: the image holds {len(faces)} face(s) "
                                    f"(0 = the largest)")
        return faces[face_index]
    if len(faces) > 1:
        log.warning("%s holds %d faces: fitting the largest (--face-index N picks another, 0 = largest)",
                    where, len(faces))
    return faces[0]


def face_crop(box, scale: float, size: int) -> np.ndarray:
    """(2, 3) affine from image to crop coordinates (continuous pixels, centres at +0.5) of a size x size
    square centred on ``box`` (x0, y0, x1, y1), ``scale`` times its larger side across."""
    x0, y0, x1, y1 = box
    half = scale * max(x1 - x0, y1 - y0) / 2
    s = size / (2 * half)
    return np.array([[s, 0, -((x0 + x1) / 2 - half) * s], [0, s, -((y0 + y1) / 2 - half) * s]])


def crop_intrinsics(intrinsics, A: np.ndarray) -> np.ndarray:
    """(4,) fx, fy, cx, cy of the crop ``A`` (``face_crop``) of a camera with ``intrinsics``."""
    fx, fy, cx, cy = intrinsics
    return np.array([fx * A[0, 0], fy * A[1, 1], cx * A[0, 0] + A[0, 2], cy * A[1, 1] + A[1, 2]])


def warp_crop(image: np.ndarray, A: np.ndarray, size: int, interpolation: int = cv2.INTER_AREA,
              border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """The size x size crop ``A`` (``face_crop``) of ``image`` (OpenCV warps pixel indices: centres at 0)."""
    Ai = A.copy()
    Ai[:, 2] += 0.5 * (A[0, 0] - 1)  # continuous (+0.5 centres) -> index coordinates, both sides
    return cv2.warpAffine(np.ascontiguousarray(image), Ai, (size, size), flags=interpolation, borderMode=border)
