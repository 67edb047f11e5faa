"""Heads: the ICT-FaceKit morphable model, face observations (mediapipe), the head fit and its asset."""
