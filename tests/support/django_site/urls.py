from __future__ import annotations

from django.urls import include, path

from tests.support.django_site import views

urlpatterns = [
    path("healthz", views.healthz),
    path("scoped", views.scoped),
    path("role", views.role),
    path("items", views.Items.as_view()),
    path("async-items", views.AsyncItems.as_view()),
    path("method", views.MethodGuarded.as_view()),
    path("checks-inside", views.checks_inside),
    path("write", views.write),
    path("unguarded", views.unguarded),
    path("claims", views.claims_reader),
    path("cors/items", views.unguarded),
    path("drf/scoped", views.DrfScoped.as_view()),
    path("drf/role", views.DrfRole.as_view()),
    path("drf/either", views.DrfEither.as_view()),
    path("drf/decorated", views.DrfDecorated.as_view()),
    path("drf/current", views.DrfCurrent.as_view()),
    path("drf/open", views.DrfOpen.as_view()),
    path("web/", views.web_home),
    path("web/async", views.web_async),
    path("auth/", include("entra_ciam.django.urls")),
]
