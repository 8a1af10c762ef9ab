"""ceal service: gRPC server running Monte-Carlo dropout inference with onnxruntime. Never imports torch."""
