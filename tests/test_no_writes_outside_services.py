"""Every state change goes through a service (`<app>/services.py`): views, API views and
serializers, forms, tasks and the accounts plumbing never write a model themselves. An AST scan
of those modules, so a direct write fails here instead of growing a second way of doing a thing."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "datasets", "labeling", "curation", "config")
# Modules that handle requests or run jobs: they call services and never write themselves.
THIN = ("api.py", "views.py", "forms.py", "tasks.py", "receivers.py", "panels.py", "authentication.py",
        "lockout.py", "middleware.py", "media.py")

# Methods that write whatever they are called on (a model instance, a manager, a queryset, a
# serializer whose save() would write).
ALWAYS_WRITES = {"save", "delete", "bulk_create", "bulk_update", "get_or_create", "update_or_create"}
# Methods that write when called on a manager or a queryset (elsewhere they are dict.update and
# the like).
QUERYSET_WRITES = {"create", "update", "set", "add", "remove", "clear"}
QUERYSET_MARKERS = {"objects", "filter", "exclude", "all", "select_for_update"}

# (module, call text) allowed to call a write method, each with the reason it writes no model
# of ours. Empty today: keep it that way where you can.
ALLOWED: set[tuple[str, str]] = set()


def thin_modules() -> list[Path]:
    out = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts or "management" in rel.parts:
                continue
            # planner_views.py, comment_views.py, ...: pages too.
            if path.name in THIN or path.name.endswith("_views.py") or "api" in rel.parts[1:-1]:
                out.append(path)
    return out


def _receiver_names(node: ast.AST) -> set[str]:
    """Attribute and call names along the chain a method is called on (`Model.objects.filter(...)`
    gives objects and filter)."""
    names = set()
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            names.add(node.id)
            return names
        else:
            return names


def direct_writes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        receiver = _receiver_names(node.func.value)
        if method in ALWAYS_WRITES or (method in QUERYSET_WRITES and receiver & QUERYSET_MARKERS):
            text = ast.unparse(node.func)
            if (path.relative_to(ROOT).as_posix(), text) not in ALLOWED:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text}(...)")
    return found


def _bases(cls: ast.ClassDef) -> set[str]:
    return {ast.unparse(b).rsplit(".", 1)[-1] for b in cls.bases}


def _methods(cls: ast.ClassDef) -> set[str]:
    return {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}


CREATES = {"ModelViewSet", "CreateModelMixin", "CreateAPIView", "ListCreateAPIView"}
UPDATES = {"ModelViewSet", "UpdateModelMixin", "UpdateAPIView", "RetrieveUpdateAPIView", "RetrieveUpdateDestroyAPIView"}
DESTROYS = {"ModelViewSet", "DestroyModelMixin", "DestroyAPIView", "RetrieveDestroyAPIView",
            "RetrieveUpdateDestroyAPIView"}


def implicit_writes(path: Path) -> list[str]:
    """DRF writes by itself where a class does not say otherwise: a view's default create or
    update saves its serializer, which for a ModelSerializer without its own create()/update()
    writes the model; a view's default perform_destroy() deletes the row."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    found = []
    for cls in classes.values():
        bases, methods = _bases(cls), _methods(cls)
        serializer = next((ast.unparse(stmt.value) for stmt in cls.body if isinstance(stmt, ast.Assign)
                           and any(getattr(t, "id", "") == "serializer_class" for t in stmt.targets)), None)
        ser_cls = classes.get(serializer or "")
        model_serializer = ser_cls is not None and "ModelSerializer" in _bases(ser_cls)
        needs = set()
        if bases & CREATES and not methods & {"create", "perform_create", "post"}:
            needs.add("create")
        if bases & UPDATES and not methods & {"update", "partial_update", "perform_update", "put", "patch"}:
            needs.add("update")
        missing = needs - _methods(ser_cls) if model_serializer else set()
        if missing:
            found.append(f"{path.relative_to(ROOT)}:{cls.lineno}: {cls.name} saves {serializer}, which lacks "
                         f"{', '.join(sorted(missing))} (DRF's default writes the model directly)")
        if bases & DESTROYS and "perform_destroy" not in methods:
            found.append(f"{path.relative_to(ROOT)}:{cls.lineno}: {cls.name} lacks perform_destroy "
                         "(DRF's default deletes the row directly)")
    return found


def test_the_scan_sees_the_modules_it_guards():
    names = {p.relative_to(ROOT).as_posix() for p in thin_modules()}
    assert {"labeling/planner_views.py", "labeling/api/planner.py", "labeling/api/labeler.py", "datasets/api.py",
            "datasets/views.py", "datasets/tasks.py", "accounts/api.py", "labeling/forms.py"} <= names


def test_the_scan_finds_a_direct_write(tmp_path):
    sample = ROOT / "tests" / "_sample_view_for_scan.py"
    sample.write_text(
        "def view(request, form, serializer, project):\n"
        "    form.save()\n"
        "    serializer.save()\n"
        "    Project.objects.filter(pk=1).update(name='x')\n"
        "    project.comment_types.all().delete()\n"
        "    {}.update(a=1)\n"
        "class S(serializers.ModelSerializer):\n"
        "    class Meta:\n"
        "        fields = ['a']\n"
        "class V(viewsets.ModelViewSet):\n"
        "    serializer_class = S\n",
        encoding="utf-8",
    )
    try:
        writes = direct_writes(sample)
        implicit = implicit_writes(sample)
    finally:
        sample.unlink()
    assert [w.split(": ", 1)[1] for w in writes] == [
        "form.save(...)", "serializer.save(...)", "Project.objects.filter(pk=1).update(...)",
        "project.comment_types.all().delete(...)",
    ]
    assert len(implicit) == 2


def test_views_apis_forms_and_tasks_write_only_through_services():
    problems = []
    for path in thin_modules():
        problems += direct_writes(path) + implicit_writes(path)
    assert not problems, "Write through a service instead:\n" + "\n".join(problems)


def test_datasets_never_imports_labeling():
    """labeling builds on datasets, not the reverse (datasets learns what it shows of labeling
    through the registrations in labeling/apps.py). Migrations are history and stay as they are."""
    found = []
    for path in sorted((ROOT / "datasets").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if "migrations" in rel.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{rel}:{node.lineno}: {n}" for n in names if n.split(".")[0] in {"labeling", "curation"}]
    assert not found, "\n".join(found)
