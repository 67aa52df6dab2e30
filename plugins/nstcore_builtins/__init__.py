"""nstcore's built-in plugins: the VGG19 extractor, the tutorial's losses, Adam and L-BFGS.

They live in their own import package (``nstcore_builtins``) and load through the ``nstcore``
entry-point group like any third-party plugin. The hook modules (``extractors``, ``losses``,
``solvers``) register lazy ``"module:Class"`` references, so listing plugins never imports
TensorFlow; the implementation modules beside them do.
"""
