"""The thinc side of every detector: the model around a torch head.

* `detector`: the thinc model (the encoder runs once per doc, the head over segments);
* `architectures`: the registered model builders (``spacy_nested.LocateLabel.v1``, ...);
* `bridge`: the one module that moves arrays between thinc and torch (``PyTorchWrapper``);
* `int8`: dynamic int8 Linear layers (torch only); `quantize`: a pipeline quantized on load;
* `layers`: torch layers the heads share; `encoders`: the installed transformer and
  frozen-encoder initialization; `signature`: builders' signatures from their heads.
"""
