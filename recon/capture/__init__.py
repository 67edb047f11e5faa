"""Capture ingest: readers for every source kind, frame selection, SfM, normalisation, writer."""
from .load import capture_to_folder, detect_source, load_capture

__all__ = ["load_capture", "capture_to_folder", "detect_source"]
