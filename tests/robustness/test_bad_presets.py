"""The bad-preset corpus: every file in tests/data/bad_presets/ and the line `check` must print.

For each file, `backprop-tui check FILE` prints exactly one line (the file's name, then
the message below), exits 1, executes nothing, and lets no library
warning or traceback through. A file that loads must also compute: `check` works out the
initial values, so a preset torch refuses (bce of 1.5) is refused here, not in the explorer.

A `bug_` file is an engine bug this suite found and the engine still has: its test says
what should happen and is expected to fail (strict) until the engine is fixed. The six
bugs the corpus found first (a 401-digit constant, '@' of two numbers, control characters
in a table name, softmax dim of a scalar, bce of 1.5 at load, a 10^10-element
intermediate) were fixed in 1515e9a and are ordinary cases now.
"""

from __future__ import annotations

import ast
import builtins
import subprocess
import sys
from pathlib import Path

import pytest

import backprop_tui.engine  # noqa: F401  (torch is imported here, not inside the guarded calls)
from backprop_tui.cli import main
from backprop_tui.engine import PresetError, parse_preset

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_presets"
MARKER = "pwned_marker"  # what the hostile expressions would create in the working directory

# file -> the part of the message that must appear after "FILE: "
CASES: dict[str, str] = {
    # TOML syntax
    "syntax_unclosed_string.toml": "TOML syntax error: Illegal character '\\n' (at line 1",
    "syntax_missing_equals.toml": "TOML syntax error: Expected '=' after a key",
    "syntax_duplicate_table.toml": "TOML syntax error: Cannot declare ('tensors', 'x') twice",
    "syntax_bad_number.toml": "TOML syntax error: Expected newline or end of document after a statement (at line 6",
    "syntax_utf8_bom.toml": "TOML syntax error: Invalid statement (at line 1, column 1)",
    # wrong types
    "type_value_string.toml": "[tensors.x]: 'value' holds 'three'; only numbers are allowed",
    "type_value_ragged.toml": "[tensors.x]: 'value' must be a number or a rectangular nested list",
    "type_value_nan.toml": "[tensors.x]: 'value' holds nan; values must be finite",
    "type_role_number.toml": "[tensors.x]: role must be one of input, target, parameter, got 1",
    "type_learning_rate_string.toml": "learning_rate must be a positive number, got 'fast'",
    "type_requires_grad_string.toml": "[tensors.x]: requires_grad must be true or false",
    "type_expr_number.toml": "step 'J' (steps[0]): needs an 'expr' (a string)",
    "type_steps_table.toml": "steps: must be an array of tables, written [[steps]]",
    "type_tensors_array.toml": "tensors: must be a table, written [tensors.NAME]",
    "type_int_tensor_float_value.toml": "[tensors.c]: 'value' holds 1.5; an int tensor takes whole numbers",
    # missing tables and keys
    "missing_tensors.toml": "missing [tensors] table",
    "missing_steps.toml": "missing [[steps]]: a preset needs at least one step",
    "missing_output.toml": "missing 'output': name the step that is the cost, e.g. output = \"J\"",
    "missing_value.toml": "[tensors.x]: needs 'value' (a number or nested list) or 'shape' and 'init'",
    "missing_role.toml": "[tensors.x]: missing 'role': one of input, target, parameter",
    "unknown_key.toml": "[tensors.x]: unknown key 'valeu'; allowed: dtype, high, init,",
    # shapes
    "shape_add_mismatch.toml": "step 'J' (steps[0]): shape mismatch in '+': shapes [2] and [3] do not broadcast",
    "shape_matmul_mismatch.toml": "shape mismatch in '@': [2, 3] @ [2, 3]: inner sizes 3 and 2 differ",
    "shape_linear_in_features.toml": "layer() expects inputs with last dimension 3 (in_features), got shape [1, 2]",
    "shape_output_not_scalar.toml": "output 'J': must be a scalar cost, but has shape [2]; wrap it in mean() or sum()",
    "shape_weight_mismatch.toml": (
        "[modules.layer]: weight has shape [1, 3], expected [out_features, in_features] = [1, 2]"
    ),
    # modules other than Linear
    "module_conv_kernel_larger_than_input.toml": (
        "step 'J' (steps[0]): conv(): kernel size [3, 3] is larger than the input's height, width [2, 2] (padding 0)"
    ),
    "module_conv_wrong_channels.toml": (
        "step 'J' (steps[0]): conv() expects inputs of shape [batch, 1, height, width] or [1, height, width] "
        "(in_channels = 1), got shape [1, 3, 6, 6]"
    ),
    "module_conv1d_two_dimensional_input.toml": (
        "conv() expects inputs of shape [batch, 1, length] or [1, length] (in_channels = 1), got shape [4]"
    ),
    "module_conv_weight_shape.toml": (
        "[modules.conv]: weight has shape [2, 2], "
        "expected [out_channels, in_channels, kernel_height, kernel_width] = [1, 1, 2, 2]"
    ),
    "module_conv_kernel_size_list.toml": (
        "[modules.conv]: 'kernel_size' must be a positive integer or a list of 2 of them, got [2, 2, 2]"
    ),
    "module_missing_option.toml": (
        "[modules.conv]: missing 'kernel_size': a Conv2d needs in_channels, out_channels, kernel_size"
    ),
    "module_batchnorm_wrong_features.toml": (
        "bn() expects inputs of shape [batch, 64] or [batch, 64, length] (num_features = 64), got shape [32, 10]"
    ),
    "module_batchnorm_one_sample.toml": (
        "bn() in training mode needs more than one value per feature (a batch of 2 or more), got shape [1, 4]"
    ),
    "module_layernorm_wrong_shape.toml": "ln() expects inputs ending in [8] (normalized_shape), got shape [4, 6]",
    "module_layernorm_bias_false.toml": (
        "[modules.ln]: a LayerNorm always has its bias; bias = false is only for Linear, Conv1d and Conv2d"
    ),
    "module_embedding_float_input.toml": 'emb() needs an int tensor of indices (dtype = "int"), got a float tensor',
    "compute_initial_embedding_index_out_of_range.toml": (
        "cannot compute the initial values: step 'J': "
        "emb(): index 27 is out of range for 27 embeddings (num_embeddings)"
    ),
    "pool_kernel_larger_than_input.toml": (
        "step 'J' (steps[0]): max_pool2d() kernel too large: "
        "kernel size 4 is larger than the input's height, width [3, 3] (padding 0)"
    ),
    "pool_missing_kernel_size.toml": (
        "step 'J' (steps[0]): max_pool2d() needs kernel_size=: e.g. max_pool2d(x, kernel_size=2)"
    ),
    "pool_padding_past_half_kernel.toml": (
        "step 'J' (steps[0]): avg_pool2d(padding=2): padding must be at most half the kernel size, 1"
    ),
    "pool_two_dimensional_input.toml": (
        "max_pool2d() needs [batch, channels, height, width] or [channels, height, width]: got shape [4, 4]"
    ),
    "limit_conv_output.toml": (
        "step 'J' (steps[0]): an operation makes too large a tensor: shape [1, 8, 1000, 1000] (8,000,000 elements); "
        "the limit is 1,000,000"
    ),
    "shape_loss_mismatch.toml": "shape mismatch in mse(): prediction [2] and target [3] differ",
    "shape_softmax_dim_out_of_range.toml": "step 'J' (steps[0]): softmax(dim=5): dim is out of range for shape []",
    "shape_sum_dim_out_of_range.toml": (
        "step 'J' (steps[0]): cannot compute sum() on shapes [2]: "
        "Dimension out of range (expected to be in range of [-1, 0], but got 1)"
    ),
    "shape_transpose_3d.toml": "step 'J' (steps[0]): '.T' needs at most 2 dimensions: got shape [2, 2, 2]",
    "type_matmul_of_numbers.toml": "step 'J' (steps[0]): '@' needs tensors: 2.0 @ 3.0 multiplies two numbers; use '*'",
    # values torch refuses: check computes the initial values
    "compute_initial_bce_out_of_range.toml": (
        "cannot compute the initial values: step 'J': cannot compute bce() on shapes [1], [1]: "
        "all elements of input should be between 0 and 1"
    ),
    "compute_initial_one_hot_index_past_classes.toml": (
        "cannot compute the initial values: step 'J': class index out of range in one_hot(): 2 is not a class of 0..1"
    ),
    "one_hot_float_classes.toml": 'step \'J\' (steps[0]): one_hot() needs class indices: give the tensor dtype = "int"',
    "one_hot_two_sizes.toml": "one_hot() takes class indices and one number of classes: got sizes [3, 2]",
    "compute_initial_class_index_past_classes.toml": (
        "cannot compute the initial values: step 'J': "
        "class index out of range in cross_entropy(): 7 is not a class of 0..2"
    ),
    "compute_initial_class_index_minus_100.toml": (  # torch's ignore_index would drop the sample silently
        "cannot compute the initial values: step 'J': class index out of range in cross_entropy(): "
        "-100 is not a class of 0..2"
    ),
    # order, cycles, names
    "use_before_definition.toml": "step 'h' (steps[0]): uses 'g' before it is defined (steps run in order)",
    "cycle_self.toml": "step 'J' (steps[0]): uses itself ('J'); steps cannot form a cycle",
    "cycle_pair.toml": "step 'a' (steps[0]): uses 'b' before it is defined (steps run in order)",
    "unknown_name.toml": "step 'J' (steps[0]): unknown name 'z'",
    "output_is_tensor.toml": "output: 'x' is a tensor, not a step; output must name a step",
    "duplicate_step_names.toml": "step 'h': duplicate name 'h' (already used by step 'h')",
    "duplicate_tensor_and_step.toml": "step 'x': duplicate name 'x' (already used by [tensors.x])",
    "duplicate_module_and_tensor.toml": "[modules.x]: duplicate name 'x' (already used by [tensors.x])",
    "name_is_function.toml": "[tensors.exp]: 'exp' is the name of a function; choose another name",
    "name_control_characters.toml": (  # ESC and newline escaped: one line, nothing reaches the terminal
        "[tensors.a\\x1b[2J\\nb]: 'a\\x1b[2J\\nb' is not a valid name (letters, digits, '_'; no leading '_')"
    ),
    "name_bidi_override.toml": (
        "[tensors.\\u202eevil]: '\\u202eevil' is not a valid name (letters, digits, '_'; no leading '_')"
    ),
    "name_not_identifier.toml": "name: '../../x/innocent' is not a valid name (letters, digits, '_'; no leading '_')",
    # expressions: ASCII only (Python folds look-alikes into names), no comments, no control characters
    "expr_non_ascii_lookalike.toml": (
        "step 'J' (steps[0]): the character U+212F at column 5 is not ASCII; "
        "names, numbers and operators in an expression are ASCII only"
    ),
    "expr_comment_with_escape.toml": (
        "step 'J' (steps[0]): '#' at column 13 starts a comment; comments are not allowed in an expression"
    ),
    "expr_control_character.toml": (
        "step 'J' (steps[0]): the control character U+001B at column 7 is not allowed in an expression"
    ),
    # unknown functions and modules
    "unknown_function.toml": "'softplus' is not a function or declared module; functions: relu,",
    "unknown_module_type.toml": (
        "[modules.conv]: type must be one of Linear, Embedding, LayerNorm, BatchNorm1d, Conv1d, Conv2d, got 'Conv3d'"
    ),
    "undeclared_module_call.toml": "'layer' is not a function or declared module",
    "function_wrong_arity.toml": "mse() takes 2 argument(s), got 1",
    "function_unknown_keyword.toml": "sum() has no keyword 'axis'; allowed: dim=, keepdim=",
    "function_keepdim_without_dim.toml": "step 'J' (steps[0]): sum(keepdim=...) needs dim= as well",
    # forbidden expression forms
    "forbidden_dunder_name.toml": "name '__builtins__' is not allowed (no leading underscore or '__')",
    "forbidden_dunder_import.toml": "only functions and declared modules can be called, by name",
    "forbidden_dunder_attribute.toml": "attribute access '.__bases__' is not allowed; only '.T' (transpose)",
    "forbidden_attribute.toml": "attribute access '.data' is not allowed; only '.T' (transpose)",
    "forbidden_lambda.toml": "lambda is not allowed in an expression",
    "forbidden_list_comprehension.toml": "a list comprehension is not allowed in an expression",
    "forbidden_generator.toml": "a generator expression is not allowed in an expression",
    "forbidden_dict_comprehension.toml": "a dict comprehension is not allowed in an expression",
    "forbidden_import.toml": "syntax error in expression 'import os' at column 1: invalid syntax",
    "forbidden_call_of_number.toml": "only functions and declared modules can be called, by name",
    "forbidden_call_of_tensor.toml": "'x' is not a function or declared module",
    "forbidden_call_of_attribute.toml": "only functions and declared modules can be called, by name",
    "forbidden_fstring.toml": "an f-string is not allowed in an expression",
    "forbidden_walrus.toml": "':=' (walrus) is not allowed in an expression",
    "forbidden_exec.toml": "'exec' is not a function or declared module",
    "forbidden_open.toml": "'open' is not a function or declared module",
    "forbidden_string_constant.toml": "constant 'x' is not allowed; only numbers",
    # indexing and reshapes
    "index_float_tensor.toml": 'step \'J\' (steps[0]): an index must be an int tensor: give the tensor dtype = "int"',
    "index_out_of_range.toml": (
        "cannot compute the initial values: step 'J': index out of range: 3 in dimension 0 of size 3 (shape [3, 2])"
    ),
    "index_range_too_long.toml": (
        "step 'J' (steps[0]): index out of range: range(3) in dimension 0 of size 2 (shape [2, 2])"
    ),
    "reshape_does_not_fit.toml": (
        "step 'J' (steps[0]): reshape() does not fit: shape [2, 3] has 6 elements, which do not fill [4, -1]"
    ),
    # cat, transpose, flatten and the activations' keywords
    "cat_shapes_mismatch.toml": (
        "step 'J' (steps[0]): shape mismatch in cat(): shapes [2, 3] and [2, 2] must be equal except along dim 0"
    ),
    "cat_dim_out_of_range.toml": "step 'J' (steps[0]): cat(dim=2): dim is out of range for shape [2, 3]",
    "transpose_one_dim.toml": (
        "step 'J' (steps[0]): transpose() takes a tensor and 2 dimensions, whole numbers, e.g. transpose(x, 0, 1)"
    ),
    "transpose_non_integer_dim.toml": (
        "step 'J' (steps[0]): a dimension of transpose() must be a whole number written in the expression"
    ),
    "transpose_dim_out_of_range.toml": (
        "step 'J' (steps[0]): transpose() dimension out of range: 2 is not a dimension of shape [2, 3]"
    ),
    "flatten_start_after_end.toml": (
        "step 'J' (steps[0]): flatten(start_dim=1, end_dim=0): start_dim comes after end_dim in shape [2, 3]"
    ),
    "leaky_relu_slope_not_number.toml": "step 'J' (steps[0]): leaky_relu(negative_slope=...) must be a number",
    "gelu_approximate_unknown.toml": "step 'J' (steps[0]): gelu(approximate=...) must be one of 'none', 'tanh'",
    "int_tensor_not_index.toml": (
        "step 'J' (steps[0]): exp() needs float tensors: int tensors are indices (x[i]) or classes"
    ),
    "int_matmul.toml": "step 'J' (steps[0]): '@' on an int tensor: int tensors are indices (x[i]) or classes",
    "int_times.toml": "step 'J' (steps[0]): '*' on an int tensor: int tensors are indices (x[i]) or classes",
    "int_divide.toml": "step 'J' (steps[0]): '/' on an int tensor: int tensors are indices (x[i]) or classes",
    "int_negated.toml": "step 'J' (steps[0]): '-' on an int tensor: int tensors are indices (x[i]) or classes",
    "int_plus_number.toml": "step 'J' (steps[0]): '+' on an int tensor: int tensors are indices (x[i]) or classes",
    # limits
    "limit_index_result.toml": (
        "step 'J' (steps[0]): an operation makes too large a tensor: "
        "shape [2, 1000, 1000] (2,000,000 elements); the limit is 1,000,000"
    ),
    "limit_cat_result.toml": (  # [1000, 1000] twice side by side, worked out before torch.cat runs
        "step 'J' (steps[0]): an operation makes too large a tensor: "
        "shape [1000, 2000] (2,000,000 elements); the limit is 1,000,000"
    ),
    "limit_one_hot_result.toml": (  # 1000 classes of a million: 12 GB if torch made it first
        "step 'J' (steps[0]): an operation makes too large a tensor: "
        "shape [1000, 1000000] (1,000,000,000 elements); the limit is 1,000,000"
    ),
    "limit_tensor_elements.toml": "[tensors.big]: 1,001,000 elements; the limit per tensor is 1,000,000",
    "limit_step_result.toml": (
        "step 'P' (steps[0]): an operation makes too large a tensor: "
        "shape [100000, 100000] (10,000,000,000 elements); the limit is 1,000,000"
    ),
    "limit_intermediate_elements.toml": (  # v @ v.T inside sum(): no named step holds it
        "step 'J' (steps[0]): an operation makes too large a tensor: "
        "shape [100000, 100000] (10,000,000,000 elements); the limit is 1,000,000"
    ),
    "limit_broadcast_past_elements.toml": (  # [1001, 1] * [1, 1001], just past the limit
        "step 'J' (steps[0]): an operation makes too large a tensor: "
        "shape [1001, 1001] (1,002,001 elements); the limit is 1,000,000"
    ),
    "limit_kept_elements_product_chain.toml": (  # 63 steps of sum(w * w * ... * w), w 1000x1000: 7.5 GB to compute
        "step 's1' (steps[1]): too much to keep for the backward pass: the operations up to here make "
        "25,000,001 elements in all; the limit is 25,000,000"
    ),
    "limit_multiply_adds_matmul_chain.toml": (  # 1,998 steps of 29 chained 1000x1000 products: hours to compute
        "step 's0' (steps[0]): too much work: '@' of [1000, 1000] and [1000, 1000] takes 1,000,000,000 "
        "multiply-adds, 3,000,000,000 in all up to here; the limit is 2,000,000,000"
    ),
    # huge TOML integers: one line, the number shortened (Python will not print one of more than 4,300 digits)
    "huge_integer_5000_digits.toml": "line 6: an integer of 5,000 digits; no number in a preset is that long",
    "huge_hex_integer_value.toml": "[tensors.x]: 'value' holds 173766203193… (2409 digits), out of float32 range",
    "huge_hex_integer_seed.toml": "[tensors.x]: seed must be a non-negative integer, got 173766203193… (2409 digits)",
    "huge_hex_integer_shape.toml": (
        "[tensors.x]: 347532406387… (2409 digits) elements; the limit per tensor is 1,000,000"
    ),
    "huge_learning_rate_400_digits.toml": "learning_rate must be a positive number, got 100000000000… (400 digits)",
    "limit_huge_int_constant.toml": "step 'J' (steps[0]): constant 100000000000… (401 digits) is out of float32 range",
    "limit_nested_parens_10000.toml": "expression is 20001 characters long; the limit is 2000",
    "limit_nested_parens_depth.toml": "expression nests brackets deeper than 40 levels",
    "limit_nested_toml_arrays.toml": "TOML nests too deeply",
    # bytes
    "encoding_latin1.toml": "not UTF-8 text (bad byte at offset 11)",
    "encoding_utf16.toml": "not UTF-8 text (bad byte at offset 0)",
    "encoding_nul_bytes.toml": "TOML syntax error: Expected newline or end of document after a statement (at line 1",
    "text_control_characters.toml": "'name' holds the control character U+001B; only printable text is allowed",
    "empty.toml": "file is empty; a preset needs [tensors], [[steps]] and output",
    "whitespace_only.toml": "file is empty; a preset needs [tensors], [[steps]] and output",
}

# Engine bugs this suite found that are not fixed yet: file -> (the message it should give, what goes wrong today).
BUGS: dict[str, tuple[str, str]] = {
}


def _line_is_clear(line: str) -> bool:
    return line.isprintable() and 0 < len(line) <= 400


class _NoExecution:
    """Records eval/exec of anything but an imported module's code, and non-AST compiles.

    Torch imports some of its modules lazily, which execs their code objects; those come
    from .py files. Text from a preset would be a str, or code compiled from "<string>".
    """

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        real_compile, real_exec, real_eval = builtins.compile, builtins.exec, builtins.eval

        def guarded_compile(source, filename, mode, flags=0, *args, **kwargs):
            if not flags & ast.PyCF_ONLY_AST:
                self.calls.append(f"compile({filename!r}, {mode!r})")
            return real_compile(source, filename, mode, flags, *args, **kwargs)

        def guarded(name, real):
            def call(source, *args, **kwargs):
                is_module_code = hasattr(source, "co_filename") and source.co_filename.endswith(".py")
                if not is_module_code:
                    self.calls.append(f"{name}({source!r:.60})")
                    raise AssertionError(f"{name} called while checking a preset")
                return real(source, *args, **kwargs)

            return call

        monkeypatch.setattr(builtins, "compile", guarded_compile)
        monkeypatch.setattr(builtins, "exec", guarded("exec", real_exec))
        monkeypatch.setattr(builtins, "eval", guarded("eval", real_eval))


@pytest.fixture(scope="module", autouse=True)
def warm_engine():
    """Load and compute every bundled preset once, so that lazy imports (torch's, and the
    engine modules `check` needs to compute initial values, whose dataclasses exec their
    generated methods) are not guarded as checks, whichever tests ran before."""
    import backprop_tui.process  # noqa: F401  (imported by cli.main; compiled here when no .pyc is written)
    from backprop_tui.engine import Session, bundled_presets, load_preset

    for path in bundled_presets().values():
        Session(load_preset(path))


def _check(path: Path, capsys, monkeypatch) -> tuple[int, list[str], str]:
    with monkeypatch.context() as patch:
        guard = _NoExecution(patch)
        code = main(["check", str(path)])
    captured = capsys.readouterr()
    assert guard.calls == []
    return code, captured.out.splitlines(), captured.err


def _calls(monkeypatch, owner, name: str) -> list:
    """The arguments of every call of owner.name from now on (the call still happens)."""
    calls: list = []
    real = getattr(owner, name)

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_corpus_is_complete():
    """Every file in the corpus has its expected message here, and the other way round."""
    on_disk = {p.name for p in CORPUS.iterdir()}
    assert on_disk == set(CASES) | set(BUGS)
    assert len(on_disk) >= 35


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_preset(name, in_tmp, capsys, monkeypatch, record_property):
    """check FILE: exit 1, one clear line naming the file, nothing executed."""
    record_property("expected", CASES[name])
    code, lines, err = _check(CORPUS / name, capsys, monkeypatch)
    assert code == 1
    assert err == ""
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"{name}: "), line
    assert CASES[name] in line
    assert _line_is_clear(line), line
    assert not (in_tmp / MARKER).exists()


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=why)) for name, (_, why) in sorted(BUGS.items())],
    ids=sorted(BUGS),
)
def test_known_engine_bug(name, in_tmp, capsys, monkeypatch, record_property):
    """What check should say for the files that show an engine bug (strict xfail until fixed)."""
    expected, why = BUGS[name]
    record_property("expected", expected)
    record_property("bug", why)
    try:
        code, lines, err = _check(CORPUS / name, capsys, monkeypatch)
    except Exception as exc:  # the bug: a traceback instead of a line
        pytest.fail(f"check raised {type(exc).__name__}: {exc}")
    assert code == 1 and err == "" and len(lines) == 1, lines
    assert lines[0].startswith(f"{name}: ") and expected in lines[0] and _line_is_clear(lines[0])


def _ten_megabytes(path: Path) -> Path:
    body = (
        'name = "big"\noutput = "J"\n\n[tensors.x]\nrole = "input"\nvalue = 1.0\n\n[[steps]]\nname = "J"\nexpr = "x"\n'
    )
    filler = "# " + "x" * 1021 + "\n"  # 1 KiB comment lines
    path.write_text(body + filler * (10 * 1024), encoding="utf-8")
    return path


def test_ten_megabyte_file(in_tmp, capsys, monkeypatch, record_property):
    """A 10 MB file is refused by its size, before it is read."""
    path = _ten_megabytes(in_tmp / "ten_megabytes.toml")
    size = path.stat().st_size
    assert size > 10_000_000
    expected = f"ten_megabytes.toml: file is {size:,} bytes; the limit is 2,000,000"
    record_property("expected", expected)
    reads = _calls(monkeypatch, Path, "read_bytes")
    code, lines, err = _check(path, capsys, monkeypatch)
    assert (code, lines, err) == (1, [expected], "")
    assert reads == []  # refused from its size alone


def test_ten_megabyte_text(monkeypatch):
    """The same 10 MB as text handed to parse_preset (the explorer's open-from-text path),
    refused from its length before the TOML parser sees it."""
    from backprop_tui.engine import preset

    text = "# " + "x" * 10_000_000
    parses = _calls(monkeypatch, preset.tomllib, "loads")
    with pytest.raises(PresetError, match="text is longer than 2,000,000 bytes"):
        parse_preset(text)
    assert parses == []


def test_whole_corpus_in_one_process(in_tmp):
    """The real command over every (non-bug) file at once: one line per file, in order, exit 1."""
    files = [CORPUS / name for name in sorted(CASES)] + [_ten_megabytes(in_tmp / "ten_megabytes.toml")]
    script = Path(sys.executable).with_name("backprop-tui")  # the installed command itself
    program = [str(script)] if script.exists() else [sys.executable, "-m", "backprop_tui"]
    command = [*program, "check", *map(str, files)]
    result = subprocess.run(command, cwd=in_tmp, capture_output=True, text=True, timeout=120)  # a hang guard
    assert result.returncode == 1
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(files)
    for path, line in zip(files, lines):
        assert line.startswith(f"{path.name}: ") and _line_is_clear(line), line
        assert CASES.get(path.name, "bytes; the limit is 2,000,000") in line
    assert not (in_tmp / MARKER).exists()


def test_execution_guard_notices_eval_and_exec(monkeypatch):
    """The guard used above does catch code being run from text (so its silence means something)."""
    with monkeypatch.context() as patch:
        guard = _NoExecution(patch)
        with pytest.raises(AssertionError):
            eval("1 + 1")
        with pytest.raises(AssertionError):
            exec(compile("x = 1", "<string>", "exec"))
    assert guard.calls[0] == "eval('1 + 1')"
    assert guard.calls[1] == "compile('<string>', 'exec')"
    assert guard.calls[2].startswith("exec(<code object <module>")
