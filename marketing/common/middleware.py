from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired

# The API authenticates with its own keys and answers 401/403 in JSON; health checks,
# static files, recipients' unsubscribe links and provider webhooks (signed) are public.
# Everything else (pages, admin) needs a logged-in user.
PUBLIC_PREFIXES = ("/api/", "/healthz", "/static/", "/u/", "/favicon.ico", "/webhooks/")


class LoginRequiredMiddleware(DjangoLoginRequired):
    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(PUBLIC_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
