"""Models, training engine, metrics and Grad-CAM (no Qt)."""
