"""Hard limits that keep a hostile or mistaken preset from hanging the machine."""

MAX_FILE_BYTES = 2_000_000
MAX_EXPR_CHARS = 2_000
MAX_EXPR_DEPTH = 40
MAX_STEPS = 2_000
MAX_EXERCISES = 200
MAX_LEAVES = 2_000
MAX_ELEMENTS_PER_TENSOR = 1_000_000
MAX_ELEMENTS_TOTAL = 4_000_000
MAX_HISTORY = 10_000
# What computing a preset costs, worked out from the shapes before anything runs:
# the elements of every tensor its operations make (autograd keeps them for the backward
# pass), and the multiply-adds of its matrix products and Linear layers.
MAX_KEPT_ELEMENTS = 25_000_000
MAX_MULTIPLY_ADDS = 2_000_000_000
# What one inspector analysis may cost: the numbers it holds at once (per-sample
# gradients are batch x elements), and its passes through the graph weighed by what one
# pass costs (the larger of the preset's kept elements and multiply-adds).
MAX_ANALYSIS_NUMBERS = 100_000_000
MAX_ANALYSIS_WORK = 50_000_000_000
