"""Intake's classifier (分类定级), pure: evidence words read in their clause, a statistical model
trained on labelled reports, the two weighed together, the priority rules, the safety net.

- `lexicon`: evidence words per type, as data; `evidence`: finding them in a text;
- `text`: normalisation, jieba segmentation, features; `model`: the linear model;
- `core`: the decision and its reason; `artifacts`: versioned model files and the promoted one;
- `corpus`, `training`, `metrics`: the labelled reports, retraining, held-out figures;
- `cli`: `python -m services.intake classify` and `train`.
"""
