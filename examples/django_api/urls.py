from __future__ import annotations

from django.urls import path
from examples.django_api import views

urlpatterns = [
    path("healthz", views.healthz),
    path("api/todolist", views.TodoList.as_view()),
    path("api/todolist/<int:item_id>", views.TodoItemView.as_view(), name="todo_item"),
]

handler404 = "examples.django_api.views.not_found"
