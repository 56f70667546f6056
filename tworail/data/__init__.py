"""Demo data shipped with tworail; see ATTRIBUTION.md in this folder."""
