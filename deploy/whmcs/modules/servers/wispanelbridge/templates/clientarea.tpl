{* Client area panel of a WisPanel Bridge service (variables from wispanelbridge_ClientArea). *}
{if $bridgeOrderMessage}
<div class="alert {if $bridgeOrderState eq 'failed'}alert-warning{else}alert-info{/if}">{$bridgeOrderMessage|escape}</div>
{/if}
{if $bridgeService}
<table class="table table-condensed">
  <tr><td>Status</td><td>{$bridgeService.status|escape}</td></tr>
  <tr><td>Username</td><td>{$bridgeService.username|escape}</td></tr>
  <tr><td>Domain</td><td>{$bridgeService.domain|escape}</td></tr>
  <tr><td>Package</td><td>{$bridgeService.package|escape}</td></tr>
  <tr><td>Server</td><td>{$bridgeService.server|escape}</td></tr>
</table>
{else}
<p>{$bridgeError|escape}</p>
{/if}
