"""The model side: loading, backends (torch, ONNX export and runtime, split, pool), selection.

Imports go one way: :mod:`.types`, then :mod:`.hardware` and :mod:`.loading`, the backends,
:mod:`.selection`, then :mod:`.pool` and :mod:`.model`.
"""
