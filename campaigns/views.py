from django.http import HttpResponse


def campaign_list_view(request):
    return HttpResponse("TODO")
