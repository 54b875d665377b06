"""The model side: loading, backends (torch, ONNX export and runtime, split, pool), selection."""
