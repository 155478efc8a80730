"""Labeling pages. Labeling projects arrive with their own issue; for now the labeler's home."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from accounts.models import Role
from accounts.permissions import role_required


@login_required
def home(request):
    """Planners, engineers and admins start at the quota dashboard; labelers at their own page."""
    if request.user.effective_role == Role.LABELER:
        return redirect("labeler-home")
    return redirect("quota-dashboard")


@role_required(Role.LABELER)
def labeler_home(request):
    return render(request, "labeling/home.html")
