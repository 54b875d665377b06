"""The model side: loading, the torch, ONNX (export, cache, runtime) and split backends, pool.

Imports go one way: types, hardware, the backends (torch, then ONNX), selection, pool, model.
"""
