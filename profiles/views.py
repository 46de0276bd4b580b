from django.http import HttpResponse


def customer_list_view(request):
    return HttpResponse("TODO")


def segment_list_view(request):
    return HttpResponse("TODO")
