import { mount } from 'svelte';
import App from './ui/App.svelte';
import './ui/app.css';
import { theme } from './ui/theme.svelte.ts';

// The theme before the first paint: no flash of the other one.
document.documentElement.dataset.theme = theme.resolved;

mount(App, { target: document.getElementById('app')! });
