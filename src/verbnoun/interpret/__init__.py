"""Answer interpretation: what a model's reply means in a question's or a data set's terms.

* :mod:`~verbnoun.interpret.parsing`: a multiple-choice reply -> the chosen option (or none);
* :mod:`~verbnoun.interpret.open_vocab`: a free-text reply -> (verb class, noun class), reading
  the reply with :mod:`~verbnoun.interpret.free_text` (words, forms, the shape of replies) and
  :mod:`~verbnoun.interpret.clauses` (where English puts a verb and its object), against the
  data set's :mod:`~verbnoun.interpret.lexicon` (its class lists as word sequences).

Nothing here asks a model or reads a run folder; the runners call it.
"""
