"""Exports after saving: merged 16/4-bit models, GGUF files (llama.cpp), an Ollama Modelfile, Hub pushes.

``run`` is the step the ``export`` phase runs where the model is; ``tools`` finds llama.cpp's converter
and quantiser; ``convert`` and ``quantize`` run them in child processes; ``ollama`` writes the Modelfile;
``gguf_file`` reads a GGUF back. Nothing heavy is imported here.
"""
