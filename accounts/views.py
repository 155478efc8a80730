"""Account pages: login/logout (Django's views, our templates) and API tokens."""
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import services
from .forms import LoginForm, TokenForm
from .models import Role
from .permissions import role_required


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


@role_required(Role.ENGINEER)
def tokens(request):
    # The new key travels once through the session so that a reload neither shows it again nor
    # creates a second token (post/redirect/get).
    new_key = request.session.pop("new_token_key", None)
    form = TokenForm()
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                token, new_key = services.create_token(
                    request.user, form.cleaned_data["name"],
                    expires_at=services.token_expiry(form.cleaned_data["expires_in_days"]),
                )
            except services.TokenError as exc:
                form.add_error("expires_in_days" if exc.field == "expires_at" else "name", str(exc))
            else:
                messages.success(request, _("Token “%(name)s” created. Copy the key now: it is shown only once.") % {"name": token.name})
                request.session["new_token_key"] = new_key
                return redirect("tokens")
    return render(request, "accounts/tokens.html", {
        "form": form,
        "new_key": new_key,
        "tokens": request.user.api_tokens.all(),
    })


@require_POST
@role_required(Role.ENGINEER)
def revoke(request, token_id: int):
    try:
        token = services.revoke_token(request.user, token_id)
    except services.TokenError:
        messages.error(request, _("No such token."))
    else:
        messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
    return redirect("tokens")
