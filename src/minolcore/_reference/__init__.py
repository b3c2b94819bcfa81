"""Pure-Python twins of every function of the C core (csrc/).

They define the behaviour; the C core must give identical results, which the
equivalence tests prove with Hypothesis. ``MINOLCORE_PUREPYTHON=1`` makes them live.
"""
