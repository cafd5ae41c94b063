"""What the teaching analyses (engine.analysis) say, as Rich Text for the panels and screens.

Every number here comes from the engine (torch); these modules only choose words and
layout. The functions take a `FrozenState` so they can run in thread workers.
"""
