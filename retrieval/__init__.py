"""Retrieval for the reference rail: documents with offsets, chunks, vectors and the index.

Modules, in the order data flows through them: ``documents`` (with
``html_text`` and ``markdown_text``) loads files into stored text with
sections; ``chunking`` cuts that text into section-aligned llama-index
TextNodes; ``embedding`` and ``sparse`` turn chunks into dense and BM25
vectors; ``store`` keeps them in Qdrant; ``index`` ties these together with
the SQLite ``docstore`` so that citations can be verified. Submodules are not
imported here, so importing ``tworail.retrieval.errors`` stays cheap.
"""
