from django.http import HttpResponse


def item_list_view(request):
    return HttpResponse("TODO")


def modelversion_list_view(request):
    return HttpResponse("TODO")


def offer_list_view(request):
    return HttpResponse("TODO")
