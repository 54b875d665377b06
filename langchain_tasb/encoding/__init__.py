"""The model side: loading, the torch, ONNX (export, cache, runtime) and split backends, pool.

Imports go one way: :mod:`.types`, :mod:`.hardware`, the backends (torch, then ONNX),
:mod:`.selection`, then :mod:`.pool` and :mod:`.model`.
"""
