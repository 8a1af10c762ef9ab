"""ceal trainer: U-Net with Monte-Carlo dropout, training, ONNX export (torch lives here only)."""
