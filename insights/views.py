from django.http import HttpResponse


def post_list_view(request):
    return HttpResponse("TODO")
