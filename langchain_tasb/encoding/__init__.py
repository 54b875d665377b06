"""The model side: loading, backends (torch, ONNX export and runtime, split, pool), selection.

Imports go one way: :mod:`.types` is imported by every module and imports none of them;
:mod:`.hardware` and :mod:`.loading` come next; the backends (:mod:`.torch_backend`,
:mod:`.onnx_graph` -> :mod:`.onnx_export` -> :mod:`.onnx_cache` -> :mod:`.onnx_backend`,
:mod:`.split_encoder`) import those; :mod:`.selection` imports the backends, and
:mod:`.pool` imports :mod:`.selection`. :mod:`.encoder` gathers the public names.
"""
