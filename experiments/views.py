from django.http import HttpResponse


def experiment_list_view(request):
    return HttpResponse("TODO")
