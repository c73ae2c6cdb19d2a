"""course_utils: the small package behind the course's lesson notebooks.

Modules, each introduced by the lesson that first needs it (what runs the
course, rather than teaches it, lives in the sub-package `tooling`):

- `data`     (lesson 01) dataset loaders, and `fetch` for a dataset's checked files.
- `lesson`   (lesson 01) run modes and recorded metrics.
- `train`    (lesson 01) device, seeding, the training loop, checkpoints.
- `plots`    (lesson 01) the course's figure style, confusion matrices, image grids.
- `cnn`      (lesson 01) a convolution by hand, output sizes, receptive fields, lesson 01's CNN.
- `exercises` (lesson 01) the checks behind every lesson's exercises: an engine and one module per lesson.
- `timing`   (lesson 01) the course's one timer.
- `checks`   (lesson 02) the one shared argument check (a positive int).
- `vocab`    (lesson 02) the one vocabulary class.
- `lstm`     (lesson 02) an LSTM built from scratch.
- `benchmarks` (lesson 02) our LSTM timed against nn.LSTM, our CRF against pytorch-crf.
- `text`     (lesson 02) character-level language modelling.
- `sequence` (lesson 03) sequence tasks, models and measurements for CNN vs LSTM.
- `verdicts` (lesson 03) the rules that turn measurements into sentences (lessons 03 and 04).
- `video`    (lesson 04) moving-garment clips and CNN-LSTM models.
- `ner_data` (lesson 05) column-format corpora and the tag schemes' rules.
- `crf`      (lesson 05) a linear-chain CRF.
- `ner`      (lesson 05) the BiLSTM-CNN-CRF tagger; `ner_train` its training loop (the `ner`
  command line is `tooling.ner_cli`).
- `distributed` (lesson 06) process groups, samplers, rank-0 saving; `ddp_cnn` the script torchrun runs.

The names most lessons use are importable from the package itself.
"""

from .lesson import default_mode, record, settings_for
from .train import count_parameters, evaluate, fit, get_device, predict, seed_everything

__all__ = [
    "default_mode", "record", "settings_for",
    "count_parameters", "evaluate", "fit", "get_device", "predict", "seed_everything",
]
