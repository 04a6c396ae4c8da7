"""The longest functions of a package (issue 16: none over 80 lines in darkgan/).

    python scripts/function_lengths.py darkgan [N]

Lines from the first decorator to the last line of the body (docstrings included), by ``ast``.
"""
import ast, sys, pathlib
rows = []
for p in pathlib.Path(sys.argv[1]).rglob("*.py"):
    tree = ast.parse(p.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            rows.append((node.end_lineno - start + 1, f"{p}:{node.lineno} {node.name}"))
rows.sort(reverse=True)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
for length, name in rows[:n]:
    print(length, name)
