#!/usr/bin/env python3
"""Self-test of scripts/check_architecture.py: small fake crates in a temporary directory, each
checked by the script as `make check-architecture` runs it. Standard library only; run it
directly or with `check_architecture.py --self-test`."""

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "check_architecture.py"
sys.path.insert(0, str(HERE))
import check_architecture  # noqa: E402

# A crate that keeps the rule: one module or two per layer, re-exports, a `use crate::oss;`
# binding, `super::` paths, test code that imports what production code may not.
CLEAN = {
    "lib.rs": "//! The crate.\npub mod aws;\npub mod control;\npub mod oss;\npub mod retry;\n"
              "pub mod store;\npub mod sync;\npub mod testing;\npub mod setup;\n",
    "retry.rs": "//! Retries.\npub trait Transient {}\n",
    "store/mod.rs": "//! Ports.\npub mod source;\n",
    "store/source.rs": "//! The source port.\nuse crate::oss::Error;\n"
                       "pub trait Source { fn get(&self) -> Result<(), Error>; }\n",
    "oss/mod.rs": "//! OSS.\npub mod client;\npub mod error;\npub use client::OssClient;\n"
                  "pub use error::Error;\n",
    "oss/error.rs": "//! OSS errors.\nuse crate::retry::Transient;\npub struct Error;\n"
                    "impl Transient for Error {}\n",
    "oss/client.rs": "//! The client.\nuse super::error::Error;\nuse crate::store::source::Source;\n"
                     "pub struct OssClient;\n",
    "aws/mod.rs": "//! AWS.\npub mod s3_source;\npub mod sqs;\n",
    "aws/s3_source.rs": "//! S3.\nuse crate::store::source::Source;\npub struct S3Source;\n"
                        "fn f() { let _ = super::sqs::Queue; }\n",
    "aws/sqs.rs": "//! SQS.\npub struct Queue;\n",
    "sync/mod.rs": "//! The core.\npub mod copy;\n",
    "sync/copy.rs": (
        "//! Copies. [`crate::aws::s3_source`] is where the S3 side lives (a comment).\n"
        "use crate::oss;\n"
        "use crate::store::{source::Source, self};\n"
        "/// Not code: crate::oss::client::OssClient\n"
        "pub fn copy() -> Result<(), oss::Error> {\n"
        "    let _ = \"crate::aws::sqs::Queue in a string\";\n"
        "    let _c = '{';\n"
        "    Ok(()) // crate::aws::sqs::Queue in a trailing comment\n"
        "}\n"
        "\n"
        "#[cfg(test)]\n"
        "mod tests {\n"
        "    use crate::aws::s3_source::S3Source;\n"
        "    use crate::testing::Double;\n"
        "    fn t() { let _ = crate::oss::client::OssClient; }\n"
        "}\n"
    ),
    "testing/mod.rs": "//! Doubles.\nuse crate::oss::OssClient;\npub struct Double;\n",
    "control/mod.rs": "//! Control.\nuse crate::setup::run;\nuse crate::testing;\n"
                      "#[cfg(test)]\nmod tests;\n",
    "control/tests.rs": "use crate::testing::Double;\n",
    "setup.rs": "//! Wiring.\nuse crate::aws::s3_source::S3Source;\nuse crate::sync::copy::copy;\n"
                "pub fn run() {}\n#[cfg(test)]\nuse crate::testing::Double;\n",
}


def doc():
    return ("# Architecture\n\n" + check_architecture.TABLE_BEGIN + "\n"
            + check_architecture.render_table() + "\n" + check_architecture.TABLE_END + "\n")


class Check(unittest.TestCase):
    def run_on(self, files, doc_text=None, extra=()):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for rel, text in files.items():
                path = root / "shared" / "src" / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            (root / "docs").mkdir()
            (root / "docs" / "ARCHITECTURE.md").write_text(
                doc() if doc_text is None else doc_text, encoding="utf-8")
            run = subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), *extra],
                                 capture_output=True, text=True, timeout=60)
            return run.returncode, run.stdout.splitlines()

    def with_files(self, **changes):
        files = dict(CLEAN)
        files.update({k.replace("__", "/") + ".rs": v for k, v in changes.items()})
        return files

    def test_clean_tree_passes(self):
        code, out = self.run_on(CLEAN)
        self.assertEqual(code, 0, out)
        self.assertEqual(len(out), 1, out)
        self.assertTrue(out[0].startswith("architecture: "), out)
        self.assertIn("no violations, no cycles", out[0])

    def test_core_importing_an_adapter_fails_on_that_line(self):
        code, out = self.run_on(self.with_files(
            sync__x="//! X.\n\nuse crate::aws::s3_source::S3Source;\n"))
        self.assertEqual(code, 1, out)
        self.assertEqual(out, ["shared/src/sync/x.rs:3: sync::x (L2 core) imports aws::s3_source "
                               "(L3 adapter): L2 core may import L0 to L2 only"])

    def test_paths_in_code_and_bound_modules_count(self):
        code, out = self.run_on(self.with_files(
            sync__copy="//! C.\nuse crate::oss;\n\nfn f() {\n    let _ = oss::client::OssClient;\n"
                       "    let _ = crate::aws::sqs::Queue;\n}\n"))
        self.assertEqual(code, 1, out)
        self.assertEqual(out, [
            "shared/src/sync/copy.rs:5: sync::copy (L2 core) imports oss::client (L3 adapter): "
            "L2 core may import L0 to L2 only",
            "shared/src/sync/copy.rs:6: sync::copy (L2 core) imports aws::sqs (L3 adapter): "
            "L2 core may import L0 to L2 only",
        ])

    def test_reexports_count_as_their_module(self):
        # `crate::oss::Error` is `oss::error` (L0): a port may name it; `crate::oss::OssClient`
        # is `oss::client` (L3): it may not.
        code, out = self.run_on(self.with_files(
            store__source="//! S.\nuse crate::oss::{Error, OssClient};\n"))
        self.assertEqual(code, 1, out)
        self.assertEqual(out, [
            "shared/src/store/source.rs:2: store::source (L1 domain) imports oss::client "
            "(L3 adapter): L1 domain may import L0 to L1 only",
            # and oss::client imports store::source: a cycle
            "shared/src/oss/client.rs:3: import cycle: oss::client -> store::source -> "
            "oss::client (at shared/src/oss/client.rs:3, shared/src/store/source.rs:2)",
        ])

    def test_super_is_resolved_from_the_file(self):
        code, out = self.run_on(self.with_files(
            oss__error="//! E.\npub struct Error;\nfn f() { let _ = super::client::OssClient; }\n"))
        self.assertEqual(code, 1, out)
        self.assertEqual(len(out), 2, out)  # the import, and now a cycle client <-> error
        self.assertEqual(out[0], "shared/src/oss/error.rs:3: oss::error (L0 foundation) imports "
                                 "oss::client (L3 adapter): L0 foundation may import L0 only")
        self.assertIn("import cycle: oss::client -> oss::error -> oss::client", out[1])

    def test_a_cycle_fails_and_is_printed(self):
        code, out = self.run_on(self.with_files(
            aws__sqs="//! SQS.\nuse super::s3_source::S3Source;\npub struct Queue;\n"))
        self.assertEqual(code, 1, out)
        self.assertEqual(out, [
            "shared/src/aws/s3_source.rs:4: import cycle: aws::s3_source -> aws::sqs -> "
            "aws::s3_source (at shared/src/aws/s3_source.rs:4, shared/src/aws/sqs.rs:2)"])

    def test_test_code_is_ignored(self):
        # CLEAN's sync/copy.rs imports an adapter and the doubles in its `mod tests`, and
        # control/tests.rs the doubles: none of it counts.
        self.assertIn("mod tests {\n    use crate::aws::s3_source::S3Source;",
                      CLEAN["sync/copy.rs"])
        code, out = self.run_on(CLEAN)
        self.assertEqual(code, 0, out)
        # The same import outside the test module does.
        code, out = self.run_on(self.with_files(
            sync__copy=CLEAN["sync/copy.rs"].replace("#[cfg(test)]\n", "")))
        self.assertEqual(code, 1, out)
        self.assertTrue(any("imports aws::s3_source" in line for line in out), out)

    def test_code_after_a_test_module_is_production_code(self):
        # config.rs has test modules between its structs: only the module is left out.
        code, out = self.run_on(self.with_files(
            store__source="//! S.\n#[cfg(test)]\nmod tests {\n    use crate::aws::sqs::Queue;\n}\n"
                          "\nfn f() { let _ = crate::aws::sqs::Queue; }\n"))
        self.assertEqual(code, 1, out)
        self.assertEqual(out, ["shared/src/store/source.rs:7: store::source (L1 domain) imports "
                               "aws::sqs (L3 adapter): L1 domain may import L0 to L1 only"])

    def test_control_and_testing_are_closed(self):
        code, out = self.run_on(self.with_files(
            setup="//! W.\nuse crate::control::Thing;\nuse crate::testing::Double;\n",
            control__mod="//! Control.\npub struct Thing;\n"))
        self.assertEqual(code, 1, out)
        self.assertEqual(out, [
            "shared/src/setup.rs:2: setup (L4 wiring) imports control (L4 wiring): "
            + check_architecture.FEATURE_GATED["control"],
            "shared/src/setup.rs:3: setup (L4 wiring) imports testing (L4 wiring): "
            + check_architecture.TEST_ONLY["testing"],
        ])

    def test_a_module_in_no_layer_fails(self):
        code, out = self.run_on(self.with_files(stray="//! Nowhere.\n"))
        self.assertEqual(code, 1, out)
        self.assertEqual(len(out), 1, out)
        self.assertTrue(out[0].startswith("shared/src/stray.rs:1: stray is in no layer"), out)

    def test_the_doc_table_must_be_the_scripts(self):
        stale = doc().replace("`retry`, ", "")
        code, out = self.run_on(CLEAN, doc_text=stale)
        self.assertEqual(code, 1, out)
        self.assertEqual(len(out), 1, out)
        self.assertIn("docs/ARCHITECTURE.md:3: the layer table is not the one", out[0])
        code, out = self.run_on(CLEAN, doc_text=stale, extra=["--no-doc"])
        self.assertEqual(code, 0, out)

    def test_every_line_with_all(self):
        files = self.with_files(
            sync__x="//! X.\nfn f() { let _ = crate::aws::sqs::Queue; }\n"
                    "fn g() { let _ = crate::aws::sqs::Queue; }\n")
        code, out = self.run_on(files)
        self.assertEqual((code, len(out)), (1, 1), out)
        code, out = self.run_on(files, extra=["--all"])
        self.assertEqual((code, len(out)), (1, 2), out)

    def test_literals_and_comments_are_not_code(self):
        code = check_architecture.blank_comments_and_literals(
            'a /* crate::x /* nested */ crate::y */ b "crate::z \\" crate::w" r#"crate::v"# '
            "'\\'' 'static // crate::u\nc")
        self.assertNotIn("crate::", code)
        self.assertEqual(code.count("\n"), 1)
        self.assertIn("'static", code)
        self.assertTrue(code.endswith("\nc"))


if __name__ == "__main__":
    unittest.main(verbosity=1)
