"""blurr's names on adapt, all three generations, under blurr's module paths: a blurr user changes only
`blurr.` to `adapt.blurr.` in the imports.

    from adapt.blurr.text.data.all import *      # 1.0 (blurr.text.data.all)
    from adapt.blurr.text.modeling.all import *
    from adapt.blurr.data.all import *           # 2020 and mid-2021 (blurr.data.all)
    from adapt.blurr.modeling.all import *

Importing `adapt.blurr` adds blurr's prediction methods to fastai's `Learner` (`blurr_predict`,
`blurr_predict_tokens`, `blurr_predict_answers`, `blurr_generate`, `blurr_summarize`, `blurr_translate`,
`blurr_fill_mask`), only under those names, so no fastai method is overridden; `import adapt` never does.
What a blurr learner trains is an adapt model: `adapt.fastai.save(learn, path)` writes the folder that Easy,
`adapt predict`, `adapt serve`, `adapt export` and Docker load. See `adapt.blurr._names` for what each path
exports and the README's "Coming from blurr" for the names not provided.
"""

from fastai.learner import Learner

from ._learner import LEARNER_METHODS

for _name, _method in LEARNER_METHODS.items():
    if not hasattr(Learner, _name):
        setattr(Learner, _name, _method)
