"""The command line refuses what it does not know: an unknown short or long option, a
missing argument, an argument given to an option that takes none, a malformed or out of
range number, a stray word. Each prints the reason and the usage to stderr, nothing to
stdout, and exits 1 without starting. -h, -? and --help print the usage and exit 0."""

import pytest

from conftest import KEYMUX_BIN
from helpers import run_bounded

BAD = [
    (["--no-such-option"], "'--no-such-option'"),
    (["-x"], "'x'"),
    (["-Z", "-t"], "'Z'"),
    (["--ver"], "'--ver'"),                 # ambiguous: --version, --verbose
    (["-v"], "-v requires an argument"),
    (["--verbose"], "'--verbose' requires an argument"),
    (["-c"], "-c requires an argument"),
    (["--help=yes"], "'--help=yes' takes no argument"),
    (["-v", "12"], "-v requires a number"),
    (["-v", "two"], "-v requires a number"),
    (["-s", "0"], "-s requires a valid port"),
    (["-s", "65536"], "-s requires a valid port"),
    (["-s", "12ab"], "-s requires a valid port"),
    (["-i", "-5"], "-i requires a positive number"),
    (["-m", "100"], "-m requires a size"),
    (["-m", "1k"], "-m requires a size"),
    (["--pace", "fast"], "--pace requires auto, block or nap"),
    (["stray"], "unexpected argument 'stray'"),
]


@pytest.mark.parametrize("argv,reason", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_fails(argv, reason):
    r = run_bounded([KEYMUX_BIN] + argv, 10)
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    assert reason in err, err
    assert "Usage: keymux" in err, "no usage after the reason: %r" % err
    assert r.stdout == b"", r.stdout


@pytest.mark.parametrize("argv", [["-h"], ["-?"], ["--help"]])
def test_help_succeeds(argv):
    r = run_bounded([KEYMUX_BIN] + argv, 10)
    assert r.returncode == 0, r.stderr
    assert b"Usage: keymux" in r.stdout
    assert r.stderr == b""
