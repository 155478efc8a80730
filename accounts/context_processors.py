from .models import Role


def roles(request):
    user = getattr(request, "user", None)
    role = user.effective_role if user is not None and user.is_authenticated else None
    return {
        "role": role,
        "is_planner": bool(role) and user.has_role(Role.PLANNER),
        "is_engineer": bool(role) and user.has_role(Role.ENGINEER),
        "is_labeler": role == Role.LABELER,
        "is_admin": role == Role.ADMIN,
    }
