"""Evaluation: the paper's metrics on generated images, and everything they need.

    metrics.py            confusion matrix, per-pixel / per-class accuracy, class IoU; PSNR, SSIM, L1
    cityscapes.py         the Cityscapes label table and the colour -> class rule
    predictions.py        predictions paired with their targets: from a model or from folders
    segmenter.py          the FCN-score's segmentation network, its file, running it
    segmenter_training.py training it on real photos
    evaluator.py          scoring per task (photo2label, label2photo, generic); evaluate_files()
    report.py             the console table, JSON-ready results, the results pages
"""

from .evaluator import Evaluator, evaluate, evaluate_files

__all__ = ["Evaluator", "evaluate", "evaluate_files"]
