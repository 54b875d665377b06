"""The model side: loading, the torch, ONNX (export, cache, runtime) and split backends, pool.

Imports go one way: :mod:`.types`, then :mod:`.hardware` and :mod:`.loading`, the backends,
:mod:`.selection`, then :mod:`.pool` and :mod:`.model`.
"""
