"""Pure Score -> Score transforms and the musical constants they rest on: no I/O, no pyarrow.

The data stages (`pipeline.stages`) and the tokenizer build on this package; it imports neither
(tests/test_imports.py holds the rule): meter normalisation (`meter`), quantisation
(`quantize`), pitch folding (`pitch`) and the supported meters (`meters`).
"""
