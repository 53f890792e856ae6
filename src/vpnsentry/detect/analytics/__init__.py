"""Built-in detections: one module per detection, named by its id (see detect/base.py)."""
