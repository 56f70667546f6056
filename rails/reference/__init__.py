"""The reference rail: a frozen retriever plus an extractive composer of verified quotes.

``rail.ReferenceRail`` answers a Task from a ``tworail.retrieval.index.DocumentIndex``;
``composer.ExtractiveComposer`` picks the spans (``spans``) that best match the
question's terms (``question``).
"""
