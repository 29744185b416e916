"""Build-only model tooling (fetch, verify, stand-in, ONNX export): never shipped in a layer or the image."""
